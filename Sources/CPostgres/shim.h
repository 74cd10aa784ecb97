#ifndef HERALD_CPOSTGRES_SHIM_H
#define HERALD_CPOSTGRES_SHIM_H

#if __has_include(<libpq-fe.h>)
#include <libpq-fe.h>
#else
#include <postgresql/libpq-fe.h>
#endif

/* PG_DIAG_* are plain macros of char literals; give Swift typed accessors. */
static inline int herald_pg_diag_sqlstate(void) { return PG_DIAG_SQLSTATE; }
static inline int herald_pg_diag_message_primary(void) { return PG_DIAG_MESSAGE_PRIMARY; }
static inline int herald_pg_diag_constraint_name(void) { return PG_DIAG_CONSTRAINT_NAME; }
static inline int herald_pg_diag_severity_nonlocalized(void) { return PG_DIAG_SEVERITY_NONLOCALIZED; }

#endif
