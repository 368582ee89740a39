"""The flood analysis: NDVI before and after an event, its difference, and a report."""
