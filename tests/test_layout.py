"""The house: one core, faces side by side. Import graph from grimp (import-linter's engine), lazy imports included."""

import grimp
import networkx as nx
import pytest

FACES = ("mn_gym.faces.rollout", "mn_gym.faces.gym", "mn_gym.faces.vector", "mn_gym.faces.sb3")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("mn_gym", include_external_packages=True)


def _edges(graph: grimp.ImportGraph) -> set[tuple[str, str]]:
    own = {m for m in graph.modules if m.split(".")[0] == "mn_gym"}
    return {(a, b) for a in own for b in graph.find_modules_directly_imported_by(a) if b in own and a != b}


def test_no_import_cycle(graph):
    g = nx.DiGraph(_edges(graph))
    assert nx.is_directed_acyclic_graph(g), f"import cycles: {list(nx.simple_cycles(g))[:5]}"


def test_no_face_imports_another_face(graph):
    for face in FACES:
        others = set(FACES) - {face}
        assert not (graph.find_modules_directly_imported_by(face) & others), face
        for other in others:  # not through any chain either
            assert not graph.chain_exists(importer=face, imported=other), (face, other)


def test_core_is_pure_torch(graph):
    for module in graph.find_descendants("mn_gym.core"):
        imported = graph.find_modules_directly_imported_by(module)
        outside = {m for m in imported if m.startswith("mn_gym") and not m.startswith("mn_gym.core")}
        assert not outside and "gymnasium" not in imported, (module, outside)


def test_the_functional_env_knows_no_face(graph):
    for module in ("mn_gym.functional", "mn_gym.catalogue", "mn_gym.tasks", "mn_gym.compilation"):
        assert not graph.chain_exists(importer=module, imported="mn_gym.faces", as_packages=True), module
        assert not graph.chain_exists(importer=module, imported="gymnasium", as_packages=True), module
