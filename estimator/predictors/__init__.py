"""Predictors of energy per sample per epoch (J), one class per approach, JSON-serialisable."""

from estimator.predictors.affine import FamilyAffine, FamilyAffineParams, GlobalFlops
from estimator.predictors.base import (
    ArtifactFormatError,
    NotFittedError,
    PhysicalPredictor,
    Predictor,
)
from estimator.predictors.boosted import Boosted
from estimator.predictors.physical import (
    BoostedDuration,
    EnergyPower,
    PowerDuration,
    RooflineBoosted,
    RooflineDuration,
    RooflineEnergy,
    family_key,
)
from estimator.predictors.utilisation import OBSERVED_UTIL, UtilisationAware

PREDICTORS: dict[str, type[Predictor]] = {
    cls.name: cls
    for cls in (
        GlobalFlops,
        FamilyAffine,
        FamilyAffineParams,
        UtilisationAware,
        Boosted,
        PowerDuration,
        RooflineDuration,
        EnergyPower,
        RooflineEnergy,
        BoostedDuration,
        RooflineBoosted,
    )
}
"""Every predictor by name, in the order the CV table lists them."""
PHYSICAL_PREDICTORS = tuple(n for n, c in PREDICTORS.items() if issubclass(c, PhysicalPredictor))
"""The names of the predictors that answer as power × duration, in the same order."""

__all__ = [
    "OBSERVED_UTIL",
    "PHYSICAL_PREDICTORS",
    "PREDICTORS",
    "ArtifactFormatError",
    "Boosted",
    "BoostedDuration",
    "EnergyPower",
    "FamilyAffine",
    "FamilyAffineParams",
    "GlobalFlops",
    "NotFittedError",
    "PhysicalPredictor",
    "PowerDuration",
    "Predictor",
    "RooflineBoosted",
    "RooflineDuration",
    "RooflineEnergy",
    "UtilisationAware",
    "family_key",
]
