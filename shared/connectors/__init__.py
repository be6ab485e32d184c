"""Connectors to time-registration systems, behind one interface (:mod:`shared.connectors.base`)."""
