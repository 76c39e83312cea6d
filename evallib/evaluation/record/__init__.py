"""The record of a run: the fingerprint (protocol, data as read, code), provenance, and the ``results.json`` file."""
