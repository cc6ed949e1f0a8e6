"""The backend's limits both the worker and the Convex adapter must stay under."""

from __future__ import annotations

#: Items in one backend array: a function's argument, a document's field, a query's result
#: (Convex's limit; the fake Convex enforces its own copy so that it can catch us).
ARRAY_LIMIT = 8192
