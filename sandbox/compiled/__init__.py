"""Compiled languages (Java, C++): one fresh isolated run per sample."""
