#include "cmpi.h"
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// Open MPI's handle types are pointers to its internal structs; only their addresses are used here.
typedef void *MPI_Comm;
typedef void *MPI_Datatype;
typedef void *MPI_Op;
typedef void *MPI_Request;
typedef struct { int source, tag, error, cancelled; size_t ucount; } MPI_Status;
#define MPI_THREAD_FUNNELED 1
#define MPI_IN_PLACE ((void *)1)

static struct {
    int (*init_thread)(int *, char ***, int, int *);
    int (*initialized)(int *);
    int (*finalize)(void);
    int (*abort)(MPI_Comm, int);
    int (*comm_rank)(MPI_Comm, int *);
    int (*comm_size)(MPI_Comm, int *);
    int (*iallreduce)(const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm, MPI_Request *);
    int (*iallgather)(const void *, int, MPI_Datatype, void *, int, MPI_Datatype, MPI_Comm, MPI_Request *);
    int (*ireduce_scatter_block)(const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm, MPI_Request *);
    int (*ibcast)(void *, int, MPI_Datatype, int, MPI_Comm, MPI_Request *);
    int (*ibarrier)(MPI_Comm, MPI_Request *);
    int (*test)(MPI_Request *, int *, MPI_Status *);
    int (*error_string)(int, char *, int *);
    MPI_Comm world;
    MPI_Datatype types[3];
    MPI_Op ops[2];
} mpi;

int cmpi_load(const char *path, char *error, size_t error_size) {
    const char *name = path ? path : "libmpi.so.40";
    void *h = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        snprintf(error, error_size, "cannot open the MPI library %s (%s); install Open MPI (Debian: openmpi-bin libopenmpi-dev) or set FLAVA_MPI_LIBRARY", name, dlerror());
        return -1;
    }
#define SYM(field, symbol) do { *(void **)(&mpi.field) = dlsym(h, symbol); \
    if (!mpi.field) { snprintf(error, error_size, "%s has no symbol %s: not an Open MPI 4 or 5 library", name, symbol); return -1; } } while (0)
    SYM(init_thread, "MPI_Init_thread"); SYM(initialized, "MPI_Initialized"); SYM(finalize, "MPI_Finalize");
    SYM(abort, "MPI_Abort"); SYM(comm_rank, "MPI_Comm_rank"); SYM(comm_size, "MPI_Comm_size");
    SYM(iallreduce, "MPI_Iallreduce"); SYM(iallgather, "MPI_Iallgather");
    SYM(ireduce_scatter_block, "MPI_Ireduce_scatter_block"); SYM(ibcast, "MPI_Ibcast"); SYM(ibarrier, "MPI_Ibarrier");
    SYM(test, "MPI_Test"); SYM(error_string, "MPI_Error_string");
    // The predefined handles are the addresses of these globals (mpi.h: OMPI_PREDEFINED_GLOBAL).
    SYM(world, "ompi_mpi_comm_world");
    SYM(types[CMPI_FLOAT32], "ompi_mpi_float"); SYM(types[CMPI_INT32], "ompi_mpi_int"); SYM(types[CMPI_FLOAT64], "ompi_mpi_double");
    SYM(ops[CMPI_SUM], "ompi_mpi_op_sum"); SYM(ops[CMPI_MAX], "ompi_mpi_op_max");
#undef SYM
    return 0;
}

int cmpi_init(int *rank, int *size) {
    int provided = 0, already = 0, rc;
    if ((rc = mpi.initialized(&already)) != 0) return rc;
    if (!already && (rc = mpi.init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != 0) return rc;
    if ((rc = mpi.comm_rank(mpi.world, rank)) != 0) return rc;
    return mpi.comm_size(mpi.world, size);
}

int cmpi_finalize(void) { return mpi.finalize(); }
void cmpi_abort(int code) { mpi.abort(mpi.world, code); }

int cmpi_iallreduce(void *buffer, int count, cmpi_type type, cmpi_op op, cmpi_request *request) {
    return mpi.iallreduce(MPI_IN_PLACE, buffer, count, mpi.types[type], mpi.ops[op], mpi.world, request);
}
int cmpi_iallgather(const void *send, void *recv, int count, cmpi_type type, cmpi_request *request) {
    return mpi.iallgather(send, count, mpi.types[type], recv, count, mpi.types[type], mpi.world, request);
}
int cmpi_ireduce_scatter_block(const void *send, void *recv, int count, cmpi_type type, cmpi_op op, cmpi_request *request) {
    return mpi.ireduce_scatter_block(send, recv, count, mpi.types[type], mpi.ops[op], mpi.world, request);
}
int cmpi_ibcast(void *buffer, int count, cmpi_type type, int root, cmpi_request *request) {
    return mpi.ibcast(buffer, count, mpi.types[type], root, mpi.world, request);
}
int cmpi_ibarrier(cmpi_request *request) { return mpi.ibarrier(mpi.world, request); }
int cmpi_test(cmpi_request *request, int *done) {
    MPI_Status status;
    return mpi.test(request, done, &status);
}
void cmpi_error_string(int code, char *out, size_t size) {
    char text[512]; int n = 0;
    if (mpi.error_string && mpi.error_string(code, text, &n) == 0) snprintf(out, size, "%s", text);
    else snprintf(out, size, "MPI error %d", code);
}
