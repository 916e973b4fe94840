// Distributed.h — `mpirun -np N nnc FILE --train`: data-parallel training
// over MPI (built when CMake finds MPI; option NNC_MPI). See README.md,
// "Training on a cluster", and runtime/Training.h (DataParallel).
#pragma once

#include "driver/Train.h"

namespace nnc {

/// Whether this process was started by an MPI launcher (mpirun sets
/// OMPI_COMM_WORLD_SIZE, PMIx launchers PMIX_RANK). Always false in a build
/// without MPI. nnc initializes MPI only then, so that a plain `nnc` never
/// starts it.
bool launchedByMpi();

/// The threads each process computes with unless --threads says: the cores
/// shared among the launcher's processes on this machine
/// (OMPI_COMM_WORLD_LOCAL_SIZE), at least one.
int threadsPerProcess();

/// `--train` as one of the launcher's processes: every process compiles the
/// program with the step's two halves, trains on its share of each batch and
/// sums gradients with MPI_Allreduce; rank 0 alone prints, evaluates and
/// saves. Returns the exit status.
int trainDistributed(const Program &program, const RunOptions &options, Diag &diag);

} // namespace nnc
