"""Subject export: collect the JSON document (collect.py); render it as PDF (render_pdf.py)."""
