"""Data for spherenet: a quadrotor simulator (the embedded default), CSV loaders, the paper's scaling, splits,
and training arrays on disk (``.npy``, memory-mapped).

Every flight source returns :class:`FlightData` with the paper's 12 -> 3 layout (see :mod:`.container`);
:func:`load_arrays` returns arrays ready for training, memory-mapped (see :mod:`.arrays`).
"""
from .arrays import load_arrays, save_arrays
from .container import FEATURE_NAMES, TARGET_NAMES, FlightData, concat
from .controller import ControllerGains
from .loaders import load_neural_fly, load_neural_lander, write_neural_fly_csv, write_neural_lander_csv
from .quadrotor import (QuadrotorParams, aerodynamic_force, ground_effect_ratio, hover_state, rk4_step,
                        state_derivative)
from .scaling import SCALINGS, PaperScaling, StandardScaling, scaling_from_dict
from .simulator import (SPLITS, SimulationResult, WindModel, default_problem, label_noise_rmse, make_references,
                        simulate_dataset, simulate_flights, simulate_references)
from .splits import random_split, split_by_condition, split_by_flight

__all__ = ["FEATURE_NAMES", "TARGET_NAMES", "ControllerGains", "FlightData", "PaperScaling", "QuadrotorParams",
           "SCALINGS", "SPLITS", "SimulationResult", "StandardScaling", "WindModel", "aerodynamic_force", "concat",
           "default_problem", "ground_effect_ratio", "hover_state", "label_noise_rmse", "load_arrays",
           "load_neural_fly", "load_neural_lander", "make_references", "random_split", "rk4_step", "save_arrays",
           "scaling_from_dict", "simulate_dataset", "simulate_flights", "simulate_references", "split_by_condition",
           "split_by_flight", "state_derivative", "write_neural_fly_csv", "write_neural_lander_csv"]
