"""Segment/Snowplow-style web analytics events from a paginated REST API or JSONL file drops.

Flow: :mod:`rest` (pages with retries) or the JSONL drops (:mod:`jsonl`) give bytes,
:mod:`parse` turns them into Arrow (pyarrow.json), :mod:`streams` shapes the events and
form_submissions streams with Arrow kernels, :mod:`source` is the weftline ``Source`` and
:mod:`tap` the Singer tap. :mod:`generator` makes realistic, deterministic events for
tests and the demo.
"""
