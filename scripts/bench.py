#!/usr/bin/env python
"""Benchmark one configuration's throughput and memory; same as `densebench bench` (see its --help)."""

import sys

from densebench.bench.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
