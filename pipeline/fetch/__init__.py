"""The fetch layer: one polite, bounded HTTP client for feeds, pages and robots.txt."""
