"""Run directories on disk: identity and files, locks, sweep cells and their status, stop signals for resume."""
