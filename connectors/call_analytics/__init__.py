"""Amazon Connect Contact Lens analysis files (voice and chat), from a folder or an S3 bucket.

Flow: :mod:`objects` lists and reads files, :mod:`incremental` picks the new ones,
:mod:`drift` checks a document's shape, :mod:`analysis` turns one document into a
call row, :mod:`reader` batches them into Arrow, :mod:`source` is the weftline
``Source`` and :mod:`tap` the Singer tap.
"""
