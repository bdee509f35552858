"""Failure-case suite (issue 18): each case states its expected outcome; docs/reliability.md lists them."""
