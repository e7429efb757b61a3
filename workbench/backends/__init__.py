"""Engines that turn a prompt into a stream of events (see base.Backend)."""
