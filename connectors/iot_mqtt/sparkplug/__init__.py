"""Sparkplug B: topic namespace, payload decoding, and the host-side birth/death/seq tracker."""
