"""The pure core: no Ray, Arrow or omegaconf (tests/core/test_core_is_pure.py checks it)."""
