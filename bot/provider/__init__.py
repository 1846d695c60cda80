"""AI/ML API access: request/response models, the error taxonomy, the HTTP client and the media downloader.

Nothing in this package imports discord.
"""
