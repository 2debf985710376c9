"""Writes the sample shards under data/sample/: `python data/make_sample.py`.

65 rows: single, multiple, parallel, parallel-multiple and irrelevance cases over tools in the three
accepted forms (OpenAI, bare function, xLAM), with defaults of every JSON type, enums, nested objects
and arrays, plus a handful of bad rows. `answers` holds the gold calls (xLAM form).
Also writes data/sources/: the good rows as an xLAM JSON file and a BFCL JSON Lines file, the
inputs of the README's prepare -> augment -> label example.
"""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OUT = Path(__file__).resolve().parent / "sample"
SOURCES = Path(__file__).resolve().parent / "sources"  # inputs of jobs/prepare.py


def fn(name, description, properties, required=()):
    """A bare function with a JSON-schema parameters object."""
    return {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(required)}}


def openai(name, description, properties, required=()):
    return {"type": "function", "function": fn(name, description, properties, required)}


def xlam(name, description, params):
    return {"name": name, "description": description, "parameters": params}


TOOLS = {
    "weather": fn("get_current_weather", "Get the current weather", {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit", "default": "celsius"},
    }, ["location"]),
    "giveaways": fn("live_giveaways_by_type", "Retrieve live giveaways from the GamerPower API based on the specified type.", {
        "type": {"type": "string", "description": "The type of giveaways to retrieve (e.g., game, loot, beta).", "default": "game"},
    }, ["type"]),
    "tip": xlam("calculate_tip", "Calculate the tip for a bill, optionally split between people.", {
        "bill_amount": {"type": "float", "description": "The total bill amount."},
        "tip_percentage": {"type": "float, optional", "description": "Tip percentage.", "default": 15.0},
        "split": {"type": "int, optional", "description": "Number of people sharing the bill.", "default": 1},
    }),
    "flights": openai("search_flights", "Search one-way flights between two airports.", {
        "origin": {"type": "string", "description": "IATA code of the departure airport"},
        "destination": {"type": "string", "description": "IATA code of the arrival airport"},
        "date": {"type": "string", "description": "Departure date, YYYY-MM-DD"},
        "passengers": {"type": "integer", "description": "Number of passengers", "default": 1},
        "cabin": {"type": "string", "enum": ["economy", "premium", "business", "first"], "description": "Cabin class", "default": "economy"},
        "nonstop": {"type": "boolean", "description": "Only nonstop flights", "default": False},
    }, ["origin", "destination", "date"]),
    "event": openai("create_event", "Create a calendar event.", {
        "title": {"type": "string", "description": "Event title"},
        "attendees": {"type": "array", "items": {"type": "string"}, "description": "Email addresses of attendees"},
        "location": {"type": "object", "description": "Where it happens", "properties": {
            "city": {"type": "string", "description": "City"},
            "address": {"type": "string", "description": "Street address"}}, "required": ["city"]},
        "reminders": {"type": "array", "description": "Reminders before the event", "items": {"type": "object", "properties": {
            "minutes": {"type": "integer", "description": "Minutes before"},
            "method": {"type": "string", "enum": ["email", "popup"], "description": "How to remind"}}, "required": ["minutes"]}},
    }, ["title"]),
    "currency": xlam("convert_currency", "Convert an amount between two currencies.", {
        "amount": {"type": "float", "description": "The amount to convert."},
        "from_currency": {"type": "str", "description": "ISO code of the source currency."},
        "to_currency": {"type": "str", "description": "ISO code of the target currency."},
    }),
    "stock": fn("get_stock_price", "Get the latest price of a stock.", {
        "symbol": {"type": "string", "description": "Ticker symbol"},
        "exchange": {"type": ["string", "null"], "description": "Exchange; any when null", "default": None},
    }, ["symbol"]),
    "sort": xlam("sort_numbers", "Sort a list of numbers.", {
        "numbers": {"type": "List[float]", "description": "The numbers to sort."},
        "descending": {"type": "bool, optional", "description": "Sort from largest to smallest.", "default": False},
    }),
    "email": fn("send_email", "Send an email.", {
        "to": {"type": "array", "items": {"type": "string"}, "description": "Recipients"},
        "subject": {"type": "string", "description": "Subject line"},
        "body": {"type": "string", "description": "Message body"},
        "cc": {"type": "array", "items": {"type": "string"}, "description": "Copy recipients", "default": []},
    }, ["to", "subject", "body"]),
    "thermostat": openai("set_thermostat", "Set the home thermostat.", {
        "temperature": {"type": "number", "description": "Target temperature in degrees"},
        "mode": {"type": "string", "enum": ["heat", "cool", "auto"], "description": "Operating mode", "default": "auto"},
        "schedule": {"type": "object", "description": "When to apply it", "properties": {
            "start": {"type": "string", "description": "HH:MM"}, "end": {"type": "string", "description": "HH:MM"}}},
    }, ["temperature"]),
    "news": xlam("get_news", "Fetch recent news articles on a topic.", {
        "topic": {"type": "str", "description": "The topic to search for."},
        "limit": {"type": "int, optional", "description": "How many articles.", "default": 5},
        "filters": {"type": "Dict[str, Any], optional", "description": "Extra filters such as language.", "default": {}},
    }),
    "table": fn("book_table", "Book a restaurant table.", {
        "restaurant": {"type": "string", "description": "Restaurant name"},
        "time": {"type": "string", "description": "Time, HH:MM"},
        "party_size": {"type": "integer", "description": "Number of guests"},
        "preferences": {"type": "object", "description": "Seating preferences", "default": {"outdoor": False}},
    }, ["restaurant", "time", "party_size"]),
    "translate": fn("translate_text", "Translate text into another language. Übersetzt Text.", {
        "text": {"type": "string", "description": "Text to translate"},
        "target": {"type": "string", "description": "Target language code, e.g. 'de' or 'ja'"},
    }, ["text", "target"]),
    "ping": fn("ping_server", "Check that the server answers.", {}),
}


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


# (category, tool keys, query, gold calls)
GOOD = [
    ("single", ["weather"], "What's the weather like in Boston, MA?", [call("get_current_weather", location="Boston, MA")]),
    ("single", ["weather"], "Temperature in Paris in fahrenheit please", [call("get_current_weather", location="Paris", unit="fahrenheit")]),
    ("single", ["giveaways"], "Any beta giveaways live right now?", [call("live_giveaways_by_type", type="beta")]),
    ("single", ["tip"], "What's the tip on a $84.50 bill at 20%?", [call("calculate_tip", bill_amount=84.5, tip_percentage=20.0)]),
    ("single", ["tip"], "Split a 120 dollar bill four ways with the usual tip.", [call("calculate_tip", bill_amount=120.0, split=4)]),
    ("single", ["flights"], "Find a business class flight from SFO to JFK on 2025-03-14 for 2 people.",
     [call("search_flights", origin="SFO", destination="JFK", date="2025-03-14", passengers=2, cabin="business")]),
    ("single", ["event"], "Create an event 'Design review' in Berlin with ana@example.com and bo@example.com, remind me 10 minutes before by popup.",
     [call("create_event", title="Design review", attendees=["ana@example.com", "bo@example.com"], location={"city": "Berlin"},
           reminders=[{"minutes": 10, "method": "popup"}])]),
    ("single", ["currency"], "How much is 250 euros in yen?", [call("convert_currency", amount=250.0, from_currency="EUR", to_currency="JPY")]),
    ("single", ["stock"], "Price of NVDA on NASDAQ", [call("get_stock_price", symbol="NVDA", exchange="NASDAQ")]),
    ("single", ["sort"], "Sort 5, 3.2, 9 and 1 from largest to smallest", [call("sort_numbers", numbers=[5, 3.2, 9, 1], descending=True)]),
    ("single", ["email"], "Email tom@example.com with subject Lunch and say 'Noon works'.",
     [call("send_email", to=["tom@example.com"], subject="Lunch", body="Noon works")]),
    ("single", ["thermostat"], "Cool the house to 21 degrees between 18:00 and 23:00.",
     [call("set_thermostat", temperature=21, mode="cool", schedule={"start": "18:00", "end": "23:00"})]),
    ("single", ["translate"], "Translate 'Guten Morgen, schöne Grüße' into Japanese.", [call("translate_text", text="Guten Morgen, schöne Grüße", target="ja")]),
    ("single", ["ping"], "Is the server up?", [call("ping_server")]),
    ("multiple", ["weather", "stock", "news"], "Latest 3 news articles about electric cars", [call("get_news", topic="electric cars", limit=3)]),
    ("multiple", ["tip", "currency", "sort"], "Convert 99.99 USD to GBP", [call("convert_currency", amount=99.99, from_currency="USD", to_currency="GBP")]),
    ("multiple", ["flights", "table", "weather"], "Book a table for 4 at Nopa at 19:30", [call("book_table", restaurant="Nopa", time="19:30", party_size=4)]),
    ("multiple", ["email", "event", "thermostat"], "Set the heating to 23 degrees", [call("set_thermostat", temperature=23, mode="heat")]),
    ("multiple", ["giveaways", "news", "stock"], "What loot giveaways are there?", [call("live_giveaways_by_type", type="loot")]),
    ("multiple", ["sort", "tip", "translate"], "Sort these ascending: 10, 2, 33", [call("sort_numbers", numbers=[10, 2, 33])]),
    ("multiple", ["news", "weather", "currency", "flights"], "Any nonstop flights LHR to CDG on 2025-05-02?",
     [call("search_flights", origin="LHR", destination="CDG", date="2025-05-02", nonstop=True)]),
    ("multiple", ["stock", "email"], "Quote for AAPL", [call("get_stock_price", symbol="AAPL")]),
    ("multiple", ["translate", "weather"], "Say 'thank you' in French", [call("translate_text", text="thank you", target="fr")]),
    ("multiple", ["event", "table", "email"], "Put 'Team lunch' on my calendar in Lisbon",
     [call("create_event", title="Team lunch", location={"city": "Lisbon"})]),
    ("multiple", ["news", "sort"], "News on quantum computing in German", [call("get_news", topic="quantum computing", filters={"language": "de"})]),
    ("multiple", ["ping", "stock"], "Ping the server", [call("ping_server")]),
    ("parallel", ["weather"], "Weather in Tokyo, Osaka and Kyoto?",
     [call("get_current_weather", location="Tokyo"), call("get_current_weather", location="Osaka"), call("get_current_weather", location="Kyoto")]),
    ("parallel", ["currency"], "Convert 100 USD to EUR and 100 USD to CHF",
     [call("convert_currency", amount=100.0, from_currency="USD", to_currency="EUR"), call("convert_currency", amount=100.0, from_currency="USD", to_currency="CHF")]),
    ("parallel", ["stock"], "Prices of MSFT and GOOG", [call("get_stock_price", symbol="MSFT"), call("get_stock_price", symbol="GOOG")]),
    ("parallel", ["giveaways"], "Show me game and beta giveaways", [call("live_giveaways_by_type", type="game"), call("live_giveaways_by_type", type="beta")]),
    ("parallel", ["tip"], "Tip on $40 and on $65 at 18%", [call("calculate_tip", bill_amount=40.0, tip_percentage=18.0), call("calculate_tip", bill_amount=65.0, tip_percentage=18.0)]),
    ("parallel", ["translate"], "Translate 'hello' into Spanish and Italian",
     [call("translate_text", text="hello", target="es"), call("translate_text", text="hello", target="it")]),
    ("parallel", ["sort"], "Sort [3, 1, 2] and separately [9, 8, 7] descending",
     [call("sort_numbers", numbers=[3, 1, 2]), call("sort_numbers", numbers=[9, 8, 7], descending=True)]),
    ("parallel", ["flights"], "Flights SFO to SEA on 2025-06-01 and SEA to SFO on 2025-06-05",
     [call("search_flights", origin="SFO", destination="SEA", date="2025-06-01"), call("search_flights", origin="SEA", destination="SFO", date="2025-06-05")]),
    ("parallel", ["news"], "Top 2 stories on AI and top 2 on climate",
     [call("get_news", topic="AI", limit=2), call("get_news", topic="climate", limit=2)]),
    ("parallel", ["email"], "Send 'Reminder' with body 'Meeting at 3' to ann@example.com and separately to raj@example.com",
     [call("send_email", to=["ann@example.com"], subject="Reminder", body="Meeting at 3"), call("send_email", to=["raj@example.com"], subject="Reminder", body="Meeting at 3")]),
    ("parallel_multiple", ["giveaways", "weather"], "Where can I find live giveaways for beta access and games? And what's the weather like in New York, US?",
     [call("live_giveaways_by_type", type="beta"), call("live_giveaways_by_type", type="game"), call("get_current_weather", location="New York, US")]),
    ("parallel_multiple", ["stock", "news"], "TSLA price and the latest news about Tesla",
     [call("get_stock_price", symbol="TSLA"), call("get_news", topic="Tesla")]),
    ("parallel_multiple", ["flights", "weather"], "Flight from BOS to MIA on 2025-02-10 and Miami weather",
     [call("search_flights", origin="BOS", destination="MIA", date="2025-02-10"), call("get_current_weather", location="Miami")]),
    ("parallel_multiple", ["tip", "currency"], "Tip on 50 dollars and convert 50 USD to CAD",
     [call("calculate_tip", bill_amount=50.0), call("convert_currency", amount=50.0, from_currency="USD", to_currency="CAD")]),
    ("parallel_multiple", ["email", "event"], "Create 'Offsite' in Oslo and email all@example.com subject Offsite body 'See calendar'",
     [call("create_event", title="Offsite", location={"city": "Oslo"}), call("send_email", to=["all@example.com"], subject="Offsite", body="See calendar")]),
    ("parallel_multiple", ["thermostat", "weather"], "Weather in Denver, and set heat to 20",
     [call("get_current_weather", location="Denver"), call("set_thermostat", temperature=20, mode="heat")]),
    ("parallel_multiple", ["sort", "translate"], "Sort 4, 2, 8 and translate 'sorted' to German",
     [call("sort_numbers", numbers=[4, 2, 8]), call("translate_text", text="sorted", target="de")]),
    ("parallel_multiple", ["table", "weather", "news"], "Book Chez Panisse at 20:00 for 2, check Berkeley weather and get news on restaurants",
     [call("book_table", restaurant="Chez Panisse", time="20:00", party_size=2), call("get_current_weather", location="Berkeley"), call("get_news", topic="restaurants")]),
    ("parallel_multiple", ["stock", "currency"], "IBM and SAP prices, and 10 EUR to USD",
     [call("get_stock_price", symbol="IBM"), call("get_stock_price", symbol="SAP"), call("convert_currency", amount=10.0, from_currency="EUR", to_currency="USD")]),
    ("parallel_multiple", ["ping", "email"], "Ping the server then email ops@example.com subject Up body 'All good'",
     [call("ping_server"), call("send_email", to=["ops@example.com"], subject="Up", body="All good")]),
    ("irrelevance", ["weather"], "Write me a haiku about autumn.", []),
    ("irrelevance", ["stock", "currency"], "Who won the 1998 World Cup?", []),
    ("irrelevance", ["flights"], "Book me a hotel in Rome", []),
    ("irrelevance", ["tip", "sort"], "What's the capital of Australia?", []),
    ("irrelevance", ["email", "event"], "Turn on the living room lights", []),
    ("irrelevance", ["news"], "Translate 'cat' to Spanish", []),
    ("irrelevance", ["thermostat"], "How tall is Mount Everest?", []),
    ("irrelevance", ["table", "giveaways"], "Play some jazz music", []),
    ("irrelevance", ["translate"], "What's 17 times 23?", []),
    ("irrelevance", ["weather", "flights"], "Recommend a good book on Ray Data", []),
    ("irrelevance", ["currency"], "Convert 5 miles to kilometers", []),
    ("irrelevance", ["stock"], "Unicode check: ¿Qué hora es en 東京?", []),
]

BAD = [
    ("bad_tools_not_json", "Weather in Rome?", "[{name: get_current_weather"),
    ("bad_null_query", None, json.dumps([TOOLS["weather"]])),
    ("bad_empty_query", "   ", json.dumps([TOOLS["weather"]])),
    ("bad_tool_without_name", "Weather in Rome?", json.dumps([{"description": "no name", "parameters": {}}])),
    ("bad_tools_not_list", "Weather in Rome?", json.dumps(TOOLS["weather"])),
    ("bad_duplicate_names", "Weather in Rome?", json.dumps([TOOLS["weather"], TOOLS["weather"]])),
    ("bad_empty_tools", "Weather in Rome?", "[]"),
]


def rows() -> list[dict]:
    out = []
    for i, (category, keys, query, gold) in enumerate(GOOD):
        out.append({"query": query, "tools": json.dumps([TOOLS[k] for k in keys], ensure_ascii=False),
                    "answers": json.dumps(gold, ensure_ascii=False), "category": category, "source_row": i})
    for i, (category, query, tools) in enumerate(BAD):
        out.append({"query": query, "tools": tools, "answers": None, "category": category, "source_row": len(GOOD) + i})
    return out


SCHEMA = pa.schema([("query", pa.string()), ("tools", pa.string()), ("answers", pa.string()),
                    ("category", pa.string()), ("source_row", pa.int64())])


def sources() -> tuple[list[dict], list[dict]]:
    """The good rows as jobs/prepare.py's sources: xLAM's file (a JSON array, tools and answers as
    JSON strings) and BFCL's (JSON Lines, `question` as turns of messages, `function` as a list)."""
    xlam_rows = [{"id": i, "query": query, "tools": json.dumps([TOOLS[k] for k in keys], ensure_ascii=False),
                  "answers": json.dumps(gold, ensure_ascii=False)} for i, (_, keys, query, gold) in enumerate(GOOD)]
    bfcl_rows = [{"id": f"simple_{i}", "question": [[{"role": "user", "content": query}]],
                  "function": [TOOLS[k] for k in keys]} for i, (_, keys, query, _) in enumerate(GOOD[:10])]
    return xlam_rows, bfcl_rows


def main() -> None:
    data = rows()
    OUT.mkdir(parents=True, exist_ok=True)
    for n, part in enumerate([data[0::2], data[1::2]]):
        pq.write_table(pa.Table.from_pylist(part, schema=SCHEMA), OUT / f"part-{n:05d}.parquet")
    print(f"wrote {len(data)} rows to {OUT}")
    xlam_rows, bfcl_rows = sources()
    SOURCES.mkdir(exist_ok=True)
    (SOURCES / "xlam.json").write_text(json.dumps(xlam_rows, ensure_ascii=False, indent=1) + "\n")
    (SOURCES / "bfcl.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in bfcl_rows))
    print(f"wrote {len(xlam_rows)} + {len(bfcl_rows)} source rows to {SOURCES}")


if __name__ == "__main__":
    main()
