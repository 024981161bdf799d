"""Motor tasks: each with its own state type, observation terms and loss terms, one module per task."""

from mn_gym.tasks.base import ReachState, StepOutcome, Task
from mn_gym.tasks.centre_out import CentreOut, CentreOutState, CurlField, CurlFieldState
from mn_gym.tasks.cued import CuedReachState, CuedTask, DelayedReach, Sequence, SequenceState
from mn_gym.tasks.posture import Posture, PostureState
from mn_gym.tasks.reach import RandomReach
from mn_gym.tasks.tracking import Tracking, TrackingState

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (RandomReach, CentreOut, CurlField, DelayedReach, Sequence,
                                                           Posture, Tracking)}


def register_task(cls: type[Task], *, overwrite: bool = False) -> type[Task]:
    """Make a `Task` subclass available by its `name` to the catalogue (`mn_gym.register(id, effector,
    cls.name)`); usable as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"register_task takes a Task subclass, got {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name` (a non-empty string)")
    if name in TASKS and TASKS[name] is not cls and not overwrite:
        raise ValueError(f"task {name!r} is already registered (pass overwrite=True to replace it)")
    state = getattr(cls, "State", None)
    if not (isinstance(state, type) and issubclass(state, tuple) and hasattr(state, "_fields")):
        raise TypeError(f"{cls.__name__}.State must be a NamedTuple class of (B, ...) tensors")
    TASKS[name] = cls
    return cls


def task_class(name: str) -> type[Task]:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}") from None


__all__ = ["TASKS", "CentreOut", "CentreOutState", "CuedReachState", "CuedTask", "CurlField", "CurlFieldState",
           "DelayedReach", "Posture", "PostureState", "RandomReach", "ReachState", "Sequence", "SequenceState",
           "StepOutcome", "Task", "Tracking", "TrackingState", "register_task", "task_class"]
