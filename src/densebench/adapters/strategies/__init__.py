"""Adapter implementations; each module registers in `densebench.adapters.ADAPTERS`."""
