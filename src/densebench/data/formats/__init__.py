"""Release-format readers; each module registers in `densebench.data.SOURCES`."""
