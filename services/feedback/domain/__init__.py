"""Feedback domain (đánh giá, phản ánh kiến nghị): pure rules, no I/O."""
