"""The Hodei gRPC server: services, background loops and the API layer."""
