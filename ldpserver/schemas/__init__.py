"""Pydantic v2 request and response models; the OpenAPI 3.1 document is generated from them."""
