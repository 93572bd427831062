"""Backends run models and write raw profiler output plus unprofiled latency; they never parse traces."""
