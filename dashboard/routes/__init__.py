"""Plain Flask routes served beside the Dash pages (for machines: health probe, JSON status)."""
