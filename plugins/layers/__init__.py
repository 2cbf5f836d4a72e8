"""Reusable layers and weight initialisers shared by plugin backbones and heads."""
