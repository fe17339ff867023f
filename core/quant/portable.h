// Marks functions that compile for both the CPU and CUDA devices, so one
// definition of a quantization recipe serves both (and so both give the
// same bits).
#ifndef QUANTFLEET_CORE_QUANT_PORTABLE_H_
#define QUANTFLEET_CORE_QUANT_PORTABLE_H_

#ifdef __CUDACC__
#define QF_HD __host__ __device__
#else
#define QF_HD
#endif

#endif  // QUANTFLEET_CORE_QUANT_PORTABLE_H_
