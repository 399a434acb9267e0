"""Semantic maps: class tables, one-hot + edge channels, the transmitted payload and its size."""

from gesco.semantics.classes import TABLE_NAMES, ClassTable, class_table, folder_table
from gesco.semantics.edges import EDGE_RULES, instance_edges
from gesco.semantics.maps import SemanticMap
from gesco.semantics.payload import Payload
from gesco.semantics.transmitter import Transmitter

__all__ = [
    "EDGE_RULES",
    "TABLE_NAMES",
    "ClassTable",
    "Payload",
    "SemanticMap",
    "Transmitter",
    "class_table",
    "folder_table",
    "instance_edges",
]
