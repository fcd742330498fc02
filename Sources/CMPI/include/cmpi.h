// The only C that talks to MPI. Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE) are macros
// over incomplete global structs that Swift cannot import, so this shim exposes small getters and wrappers.
// libmpi is opened at run time (dlopen, RTLD_GLOBAL so Open MPI's own plugins resolve against it) instead of
// linked: the package builds, runs and tests without MPI installed, and one binary runs alone or under mpirun.
// The handles are Open MPI's ABI (libmpi.so.40: Open MPI 4.x and 5.x), the one Debian ships.
#ifndef CMPI_H
#define CMPI_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Element types of the collectives.
typedef enum { CMPI_FLOAT32 = 0, CMPI_INT32 = 1, CMPI_FLOAT64 = 2 } cmpi_type;
/// Reductions.
typedef enum { CMPI_SUM = 0, CMPI_MAX = 1 } cmpi_op;

/// Opens libmpi (`path`, or libmpi.so.40 when NULL) and resolves every symbol the shim uses. Returns 0, or -1
/// with a message in `error` (size `error_size`).
int cmpi_load(const char *path, char *error, size_t error_size);
/// MPI_Init_thread(MPI_THREAD_FUNNELED) and the world's rank and size. 0 on success, else MPI's error code.
int cmpi_init(int *rank, int *size);
/// MPI_Finalize (0 on success).
int cmpi_finalize(void);
/// MPI_Abort(MPI_COMM_WORLD, code): ends every rank.
void cmpi_abort(int code);

/// A started nonblocking collective (an MPI_Request).
typedef void *cmpi_request;
/// In-place all-reduce of `count` elements.
int cmpi_iallreduce(void *buffer, int count, cmpi_type type, cmpi_op op, cmpi_request *request);
/// All-gather: `count` elements from each rank into `recv` (size × count, in rank order).
int cmpi_iallgather(const void *send, void *recv, int count, cmpi_type type, cmpi_request *request);
/// Reduce-scatter with equal blocks: `send` holds size × count elements; rank r receives the sum of block r.
int cmpi_ireduce_scatter_block(const void *send, void *recv, int count, cmpi_type type, cmpi_op op, cmpi_request *request);
/// Broadcast of `count` elements from `root`.
int cmpi_ibcast(void *buffer, int count, cmpi_type type, int root, cmpi_request *request);
int cmpi_ibarrier(cmpi_request *request);
/// MPI_Test: *done = 1 once the request completed (it is then freed). 0 on success, else MPI's error code.
int cmpi_test(cmpi_request *request, int *done);
/// A one-line text for an MPI error code.
void cmpi_error_string(int code, char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif
