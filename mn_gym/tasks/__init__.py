"""Motor tasks: goal sampling, observation terms, loss terms and success, one module per task."""

from mn_gym.tasks.base import LOSS_TERMS, Task, TaskState
from mn_gym.tasks.centre_out import CentreOut, CurlField
from mn_gym.tasks.posture import Posture
from mn_gym.tasks.reach import RandomReach
from mn_gym.tasks.tracking import Tracking

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (RandomReach, CentreOut, CurlField, Posture, Tracking)}


def task_class(name: str) -> type[Task]:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}") from None


__all__ = ["LOSS_TERMS", "TASKS", "CentreOut", "CurlField", "Posture", "RandomReach", "Task", "TaskState",
           "Tracking", "task_class"]
