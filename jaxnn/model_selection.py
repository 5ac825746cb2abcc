"""Public path of jaxnn's drop-in searches: only re-exports :class:`GridSearchCV` and :class:`RandomizedSearchCV`
from :mod:`jaxnn.sklearn.model_selection`, where they are defined and documented
(``from jaxnn.model_selection import GridSearchCV``)."""

from jaxnn.sklearn.model_selection import GridSearchCV, RandomizedSearchCV

__all__ = ["GridSearchCV", "RandomizedSearchCV"]
