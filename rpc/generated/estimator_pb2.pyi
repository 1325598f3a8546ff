from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictEnergyRequest(_message.Message):
    __slots__ = ("onnx_model", "batch_size", "samples", "epochs", "hardware", "observed_gpu_util", "region", "price_per_kwh", "power_limit_w", "precision")
    ONNX_MODEL_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_GPU_UTIL_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    POWER_LIMIT_W_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    onnx_model: bytes
    batch_size: int
    samples: int
    epochs: int
    hardware: str
    observed_gpu_util: float
    region: str
    price_per_kwh: float
    power_limit_w: float
    precision: str
    def __init__(self, onnx_model: _Optional[bytes] = ..., batch_size: _Optional[int] = ..., samples: _Optional[int] = ..., epochs: _Optional[int] = ..., hardware: _Optional[str] = ..., observed_gpu_util: _Optional[float] = ..., region: _Optional[str] = ..., price_per_kwh: _Optional[float] = ..., power_limit_w: _Optional[float] = ..., precision: _Optional[str] = ...) -> None: ...

class PredictOptions(_message.Message):
    __slots__ = ("batch_size", "samples", "epochs", "hardware", "observed_gpu_util", "region", "price_per_kwh", "power_limit_w", "precision")
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_GPU_UTIL_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    POWER_LIMIT_W_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    batch_size: int
    samples: int
    epochs: int
    hardware: str
    observed_gpu_util: float
    region: str
    price_per_kwh: float
    power_limit_w: float
    precision: str
    def __init__(self, batch_size: _Optional[int] = ..., samples: _Optional[int] = ..., epochs: _Optional[int] = ..., hardware: _Optional[str] = ..., observed_gpu_util: _Optional[float] = ..., region: _Optional[str] = ..., price_per_kwh: _Optional[float] = ..., power_limit_w: _Optional[float] = ..., precision: _Optional[str] = ...) -> None: ...

class PredictEnergyChunk(_message.Message):
    __slots__ = ("options", "data")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    options: PredictOptions
    data: bytes
    def __init__(self, options: _Optional[_Union[PredictOptions, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class GraphProfile(_message.Message):
    __slots__ = ("family", "family_reason", "params", "flops_forward", "flops_train", "flops_by_kind", "weight_bytes", "activation_bytes", "arithmetic_intensity", "recurrent_steps", "depth", "node_count")
    class FlopsByKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    FAMILY_REASON_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    FLOPS_FORWARD_FIELD_NUMBER: _ClassVar[int]
    FLOPS_TRAIN_FIELD_NUMBER: _ClassVar[int]
    FLOPS_BY_KIND_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_BYTES_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_BYTES_FIELD_NUMBER: _ClassVar[int]
    ARITHMETIC_INTENSITY_FIELD_NUMBER: _ClassVar[int]
    RECURRENT_STEPS_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    NODE_COUNT_FIELD_NUMBER: _ClassVar[int]
    family: str
    family_reason: str
    params: int
    flops_forward: int
    flops_train: int
    flops_by_kind: _containers.ScalarMap[str, int]
    weight_bytes: int
    activation_bytes: int
    arithmetic_intensity: float
    recurrent_steps: int
    depth: int
    node_count: int
    def __init__(self, family: _Optional[str] = ..., family_reason: _Optional[str] = ..., params: _Optional[int] = ..., flops_forward: _Optional[int] = ..., flops_train: _Optional[int] = ..., flops_by_kind: _Optional[_Mapping[str, int]] = ..., weight_bytes: _Optional[int] = ..., activation_bytes: _Optional[int] = ..., arithmetic_intensity: _Optional[float] = ..., recurrent_steps: _Optional[int] = ..., depth: _Optional[int] = ..., node_count: _Optional[int] = ...) -> None: ...

class PhasePrediction(_message.Message):
    __slots__ = ("available", "energy_j", "energy_low_j", "energy_high_j", "duration_s", "predictor", "footprint", "power_w")
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    ENERGY_LOW_J_FIELD_NUMBER: _ClassVar[int]
    ENERGY_HIGH_J_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    available: bool
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    duration_s: float
    predictor: str
    footprint: PhaseFootprint
    power_w: float
    def __init__(self, available: _Optional[bool] = ..., energy_j: _Optional[float] = ..., energy_low_j: _Optional[float] = ..., energy_high_j: _Optional[float] = ..., duration_s: _Optional[float] = ..., predictor: _Optional[str] = ..., footprint: _Optional[_Union[PhaseFootprint, _Mapping]] = ..., power_w: _Optional[float] = ...) -> None: ...

class PhaseFootprint(_message.Message):
    __slots__ = ("energy_kwh", "energy_low_kwh", "energy_high_kwh", "co2_g", "co2_low_g", "co2_high_g", "cost", "cost_low", "cost_high")
    ENERGY_KWH_FIELD_NUMBER: _ClassVar[int]
    ENERGY_LOW_KWH_FIELD_NUMBER: _ClassVar[int]
    ENERGY_HIGH_KWH_FIELD_NUMBER: _ClassVar[int]
    CO2_G_FIELD_NUMBER: _ClassVar[int]
    CO2_LOW_G_FIELD_NUMBER: _ClassVar[int]
    CO2_HIGH_G_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COST_LOW_FIELD_NUMBER: _ClassVar[int]
    COST_HIGH_FIELD_NUMBER: _ClassVar[int]
    energy_kwh: float
    energy_low_kwh: float
    energy_high_kwh: float
    co2_g: float
    co2_low_g: float
    co2_high_g: float
    cost: float
    cost_low: float
    cost_high: float
    def __init__(self, energy_kwh: _Optional[float] = ..., energy_low_kwh: _Optional[float] = ..., energy_high_kwh: _Optional[float] = ..., co2_g: _Optional[float] = ..., co2_low_g: _Optional[float] = ..., co2_high_g: _Optional[float] = ..., cost: _Optional[float] = ..., cost_low: _Optional[float] = ..., cost_high: _Optional[float] = ...) -> None: ...

class GridIntensity(_message.Message):
    __slots__ = ("region", "region_name", "co2_g_per_kwh", "year", "source")
    REGION_FIELD_NUMBER: _ClassVar[int]
    REGION_NAME_FIELD_NUMBER: _ClassVar[int]
    CO2_G_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    YEAR_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    region: str
    region_name: str
    co2_g_per_kwh: float
    year: int
    source: str
    def __init__(self, region: _Optional[str] = ..., region_name: _Optional[str] = ..., co2_g_per_kwh: _Optional[float] = ..., year: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...

class PredictEnergyResponse(_message.Message):
    __slots__ = ("profile", "train", "test", "hardware", "predictor_version", "energy_source", "energy_is_estimate", "warnings", "grid", "price_per_kwh", "tier", "power_limit_w", "precision")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_FIELD_NUMBER: _ClassVar[int]
    TEST_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    PREDICTOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENERGY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENERGY_IS_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    GRID_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_KWH_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    POWER_LIMIT_W_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    profile: GraphProfile
    train: PhasePrediction
    test: PhasePrediction
    hardware: str
    predictor_version: str
    energy_source: str
    energy_is_estimate: bool
    warnings: _containers.RepeatedScalarFieldContainer[str]
    grid: GridIntensity
    price_per_kwh: float
    tier: str
    power_limit_w: float
    precision: str
    def __init__(self, profile: _Optional[_Union[GraphProfile, _Mapping]] = ..., train: _Optional[_Union[PhasePrediction, _Mapping]] = ..., test: _Optional[_Union[PhasePrediction, _Mapping]] = ..., hardware: _Optional[str] = ..., predictor_version: _Optional[str] = ..., energy_source: _Optional[str] = ..., energy_is_estimate: _Optional[bool] = ..., warnings: _Optional[_Iterable[str]] = ..., grid: _Optional[_Union[GridIntensity, _Mapping]] = ..., price_per_kwh: _Optional[float] = ..., tier: _Optional[str] = ..., power_limit_w: _Optional[float] = ..., precision: _Optional[str] = ...) -> None: ...

class MeasurementRow(_message.Message):
    __slots__ = ("graph_onnx", "run_key", "plan", "config_id", "family", "variant", "num_layers", "hidden_size", "phase", "repeat", "samples", "batch_size", "epochs", "status", "hardware", "device", "error", "flops_forward", "flops_train", "params", "duration_s", "energy_j", "energy_source", "energy_is_estimate", "energy_dynamic_j", "idle_power_w", "power_mean_w", "gpu_util_mean", "mem_util_mean", "mem_used_mean_mib", "short_window", "codecarbon_energy_j", "codecarbon_mode", "meter", "notes", "device_name", "driver", "cpu_model", "software", "data", "graph_sha256", "started_at", "finished_at", "power_limit_w", "cpu_s", "others_busy_cores", "gpu_other_processes", "precision")
    GRAPH_ONNX_FIELD_NUMBER: _ClassVar[int]
    RUN_KEY_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    NUM_LAYERS_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_SIZE_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    REPEAT_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FLOPS_FORWARD_FIELD_NUMBER: _ClassVar[int]
    FLOPS_TRAIN_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    ENERGY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENERGY_IS_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    ENERGY_DYNAMIC_J_FIELD_NUMBER: _ClassVar[int]
    IDLE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    POWER_MEAN_W_FIELD_NUMBER: _ClassVar[int]
    GPU_UTIL_MEAN_FIELD_NUMBER: _ClassVar[int]
    MEM_UTIL_MEAN_FIELD_NUMBER: _ClassVar[int]
    MEM_USED_MEAN_MIB_FIELD_NUMBER: _ClassVar[int]
    SHORT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    CODECARBON_ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    CODECARBON_MODE_FIELD_NUMBER: _ClassVar[int]
    METER_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    GRAPH_SHA256_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    POWER_LIMIT_W_FIELD_NUMBER: _ClassVar[int]
    CPU_S_FIELD_NUMBER: _ClassVar[int]
    OTHERS_BUSY_CORES_FIELD_NUMBER: _ClassVar[int]
    GPU_OTHER_PROCESSES_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    graph_onnx: bytes
    run_key: str
    plan: str
    config_id: str
    family: str
    variant: str
    num_layers: str
    hidden_size: str
    phase: str
    repeat: int
    samples: int
    batch_size: int
    epochs: int
    status: str
    hardware: str
    device: str
    error: str
    flops_forward: int
    flops_train: int
    params: int
    duration_s: float
    energy_j: float
    energy_source: str
    energy_is_estimate: bool
    energy_dynamic_j: float
    idle_power_w: float
    power_mean_w: float
    gpu_util_mean: float
    mem_util_mean: float
    mem_used_mean_mib: float
    short_window: bool
    codecarbon_energy_j: float
    codecarbon_mode: str
    meter: str
    notes: str
    device_name: str
    driver: str
    cpu_model: str
    software: str
    data: str
    graph_sha256: str
    started_at: str
    finished_at: str
    power_limit_w: float
    cpu_s: float
    others_busy_cores: float
    gpu_other_processes: int
    precision: str
    def __init__(self, graph_onnx: _Optional[bytes] = ..., run_key: _Optional[str] = ..., plan: _Optional[str] = ..., config_id: _Optional[str] = ..., family: _Optional[str] = ..., variant: _Optional[str] = ..., num_layers: _Optional[str] = ..., hidden_size: _Optional[str] = ..., phase: _Optional[str] = ..., repeat: _Optional[int] = ..., samples: _Optional[int] = ..., batch_size: _Optional[int] = ..., epochs: _Optional[int] = ..., status: _Optional[str] = ..., hardware: _Optional[str] = ..., device: _Optional[str] = ..., error: _Optional[str] = ..., flops_forward: _Optional[int] = ..., flops_train: _Optional[int] = ..., params: _Optional[int] = ..., duration_s: _Optional[float] = ..., energy_j: _Optional[float] = ..., energy_source: _Optional[str] = ..., energy_is_estimate: _Optional[bool] = ..., energy_dynamic_j: _Optional[float] = ..., idle_power_w: _Optional[float] = ..., power_mean_w: _Optional[float] = ..., gpu_util_mean: _Optional[float] = ..., mem_util_mean: _Optional[float] = ..., mem_used_mean_mib: _Optional[float] = ..., short_window: _Optional[bool] = ..., codecarbon_energy_j: _Optional[float] = ..., codecarbon_mode: _Optional[str] = ..., meter: _Optional[str] = ..., notes: _Optional[str] = ..., device_name: _Optional[str] = ..., driver: _Optional[str] = ..., cpu_model: _Optional[str] = ..., software: _Optional[str] = ..., data: _Optional[str] = ..., graph_sha256: _Optional[str] = ..., started_at: _Optional[str] = ..., finished_at: _Optional[str] = ..., power_limit_w: _Optional[float] = ..., cpu_s: _Optional[float] = ..., others_busy_cores: _Optional[float] = ..., gpu_other_processes: _Optional[int] = ..., precision: _Optional[str] = ...) -> None: ...

class RowResult(_message.Message):
    __slots__ = ("index", "run_key", "accepted", "reason")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    RUN_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    run_key: str
    accepted: bool
    reason: str
    def __init__(self, index: _Optional[int] = ..., run_key: _Optional[str] = ..., accepted: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class AddMeasurementsResponse(_message.Message):
    __slots__ = ("results", "accepted", "rejected")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RowResult]
    accepted: int
    rejected: int
    def __init__(self, results: _Optional[_Iterable[_Union[RowResult, _Mapping]]] = ..., accepted: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...

class RetrainRequest(_message.Message):
    __slots__ = ("hardware", "allow_idle_meter")
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_IDLE_METER_FIELD_NUMBER: _ClassVar[int]
    hardware: str
    allow_idle_meter: bool
    def __init__(self, hardware: _Optional[str] = ..., allow_idle_meter: _Optional[bool] = ...) -> None: ...

class RetrainResponse(_message.Message):
    __slots__ = ("hardware", "version", "selected", "scores_json", "energy_source", "energy_is_estimate")
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELD_NUMBER: _ClassVar[int]
    SCORES_JSON_FIELD_NUMBER: _ClassVar[int]
    ENERGY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENERGY_IS_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    hardware: str
    version: str
    selected: str
    scores_json: str
    energy_source: str
    energy_is_estimate: bool
    def __init__(self, hardware: _Optional[str] = ..., version: _Optional[str] = ..., selected: _Optional[str] = ..., scores_json: _Optional[str] = ..., energy_source: _Optional[str] = ..., energy_is_estimate: _Optional[bool] = ...) -> None: ...

class ListPredictorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PredictorInfo(_message.Message):
    __slots__ = ("hardware", "version", "selected", "energy_source", "energy_is_estimate", "details_json")
    HARDWARE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELD_NUMBER: _ClassVar[int]
    ENERGY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENERGY_IS_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    hardware: str
    version: str
    selected: str
    energy_source: str
    energy_is_estimate: bool
    details_json: str
    def __init__(self, hardware: _Optional[str] = ..., version: _Optional[str] = ..., selected: _Optional[str] = ..., energy_source: _Optional[str] = ..., energy_is_estimate: _Optional[bool] = ..., details_json: _Optional[str] = ...) -> None: ...

class ListPredictorsResponse(_message.Message):
    __slots__ = ("predictors", "default_hardware")
    PREDICTORS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_HARDWARE_FIELD_NUMBER: _ClassVar[int]
    predictors: _containers.RepeatedCompositeFieldContainer[PredictorInfo]
    default_hardware: str
    def __init__(self, predictors: _Optional[_Iterable[_Union[PredictorInfo, _Mapping]]] = ..., default_hardware: _Optional[str] = ...) -> None: ...

class DeleteMeasurementsRequest(_message.Message):
    __slots__ = ("run_keys",)
    RUN_KEYS_FIELD_NUMBER: _ClassVar[int]
    run_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, run_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteMeasurementsResponse(_message.Message):
    __slots__ = ("deleted", "missing")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    missing: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted: _Optional[int] = ..., missing: _Optional[_Iterable[str]] = ...) -> None: ...
