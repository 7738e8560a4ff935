"""The pipeline's pages: projects in development and their stages, the county's review, the city's
filing and the forecast (``/pipeline``), parcels, rights holders' agreements and documents, and a
county reviewer's supervision page (``/county``).

Staff read every county; a county reviewer reads its own (``access.county_of``): another county's
project, parcel, agreement or document is a 404, as if it did not exist. Every rule lives in
``portal.pipeline.services``; a refusal is shown on the page it came from, nothing kept.

- ``views_shared``: the blueprint, who acts, finding a project, storing uploads;
- ``views_projects``: projects, stages, review, filing, forecast; the county's page;
- ``views_parcels``: parcels, agreements, documents;
- ``views_public``: the public list and pages of projects in development (``/development``).
"""

from portal.pipeline import views_parcels, views_projects, views_public  # noqa: F401  (their routes are on bp)
from portal.pipeline.views_shared import bp  # noqa: F401
