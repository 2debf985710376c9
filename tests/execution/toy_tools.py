"""Implementations for the execution tests: well-behaved tools, and the ones a row must survive."""

import os


def add(a, b):
    return a + b


def echo(text):
    return {"text": text}


def spin():
    while True:
        pass


def allocate():
    chunks = []
    while True:
        chunks.append(bytearray(64 * 2**20))


def die():
    os._exit(3)


def fail():
    raise ValueError("no such account")


class Counter:
    """A stateful environment in BFCL's convention: built empty, then _load_scenario(config)."""

    def __init__(self):
        self.count = 0

    def _load_scenario(self, scenario):
        self.count = scenario.get("start", 0)

    def increment(self, by=1):
        self.count += by
        return self.count
