"""The catalog: the public interface of the package.

Views, the API, other packages and tests import from here; each rule lives in its own module:

* ``filters``: the filters and sort of a catalog search, parsed from query-string arguments;
* ``search``: listed batches with their available tonnes, the filter menus, a batch, a project
  with its batches' history;
* ``geometry``: a project boundary (GeoJSON) checked and drawn as SVG;
* ``operator``: the operator's changes (projects, issuances, listings) and the ``stock_listed``
  signal sent when stock comes up for sale.
"""

from portal.catalog.filters import CatalogFilters, FilterError
from portal.catalog.geometry import MAX_BOUNDARY_SIZE, BoundaryError, boundary_drawing, boundary_geometry
from portal.catalog.operator import (
    PROJECT_FIELDS,
    CatalogError,
    record_issuance,
    save_project,
    set_listing,
    stock_listed,
    submit_issuance,
)
from portal.catalog.search import filter_options, find_batch, find_project, search

__all__ = [
    "MAX_BOUNDARY_SIZE",
    "PROJECT_FIELDS",
    "BoundaryError",
    "CatalogError",
    "CatalogFilters",
    "FilterError",
    "boundary_drawing",
    "boundary_geometry",
    "filter_options",
    "find_batch",
    "find_project",
    "record_issuance",
    "submit_issuance",
    "save_project",
    "search",
    "set_listing",
    "stock_listed",
]
