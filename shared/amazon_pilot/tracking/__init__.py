"""Tracking: sellers' tracked products, their history and alerts, and the fetch jobs that
observe the shared products (router -> service -> domain + store; jobs -> service)."""
