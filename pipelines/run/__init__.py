"""What every job over shards shares: its settings, the shard reader and piece writer, the output
protocol, lease, progress, the plan's shared parts and the pool's preflight checks."""
