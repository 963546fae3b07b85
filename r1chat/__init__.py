"""r1chat: offline chat with DeepSeek-R1 distilled models on a phone."""

__version__ = "0.1.0"
