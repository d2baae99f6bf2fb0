"""Shared pieces for weftline's Singer taps (singer-sdk) and the JSON Schemas they share with the sources."""
