"""Per-student aggregates: pure derivation of fact rows and the SQL that sums them."""
