// extension_guard.hpp: DROP EXTENSION pg_hyperline refuses to discard
// undelivered events (unless CASCADE) and leaves no empty schema hyperline
// behind (see extension_guard.cpp).
#pragma once

namespace hyperline::pg {

// Installs the ProcessUtility hook (from _PG_init).
void InstallExtensionGuard();

}  // namespace hyperline::pg
