/* A stand-in libnvidia-ml.so for tests: the NVML entry points ingot binds, answering
 * with two recorded A100 devices. FAKE_NVML_MODE=fail makes nvmlInit_v2 fail like a
 * driver/library version mismatch; FAKE_NVML_MODE=hang makes it block forever.
 * Telemetry: device 0 is busy (97 %, 71 C, 312.5 W of 400 W), device 1 idle and reports no
 * power (NVML_ERROR_NOT_SUPPORTED, as on many boards). FAKE_NVML_PROCESSES="GPU:PID:BYTES,..."
 * lists compute processes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;

static const char *names[] = {"NVIDIA A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB"};
static const char *uuids[] = {"GPU-7f3e1c2a-9b4d-4e6f-8a1c-2d3e4f5a6b7c", "GPU-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"};
static const unsigned long long totals[] = {42949672960ULL, 42949672960ULL};
static const unsigned long long frees[] = {42314694656ULL, 21474836480ULL};

int nvmlInit_v2(void) {
    const char *mode = getenv("FAKE_NVML_MODE");
    if (mode && strcmp(mode, "fail") == 0) return 18; /* NVML_ERROR_LIB_RM_VERSION_MISMATCH */
    if (mode && strcmp(mode, "hang") == 0) for (;;) pause();
    return 0;
}
int nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(int code) {
    return code == 18 ? "RM has detected an NVML/RM version mismatch." : "Unknown Error";
}
int nvmlSystemGetDriverVersion(char *buf, unsigned int len) { snprintf(buf, len, "%s", "535.161.08"); return 0; }
int nvmlDeviceGetCount_v2(unsigned int *count) { *count = 2; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **handle) {
    if (index > 1) return 2; /* NVML_ERROR_INVALID_ARGUMENT */
    *handle = (void *)(unsigned long)(index + 1);
    return 0;
}
static int which(void *handle) { return (int)(unsigned long)handle - 1; }
int nvmlDeviceGetName(void *handle, char *buf, unsigned int len) { snprintf(buf, len, "%s", names[which(handle)]); return 0; }
int nvmlDeviceGetUUID(void *handle, char *buf, unsigned int len) { snprintf(buf, len, "%s", uuids[which(handle)]); return 0; }
int nvmlDeviceGetMemoryInfo(void *handle, nvmlMemory_t *memory) {
    int i = which(handle);
    memory->total = totals[i];
    memory->free = frees[i];
    memory->used = totals[i] - frees[i];
    return 0;
}
int nvmlDeviceGetCudaComputeCapability(void *handle, int *major, int *minor) {
    (void)handle;
    *major = 8;
    *minor = 0;
    return 0;
}

typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned int pid; unsigned long long usedGpuMemory; unsigned int gpuInstanceId, computeInstanceId; } nvmlProcessInfo_t;

int nvmlDeviceGetUtilizationRates(void *handle, nvmlUtilization_t *rates) {
    int i = which(handle);
    rates->gpu = i == 0 ? 97 : 0;
    rates->memory = i == 0 ? 64 : 0;
    return 0;
}
int nvmlDeviceGetTemperature(void *handle, int sensor, unsigned int *temp) {
    if (sensor != 0) return 2;
    *temp = which(handle) == 0 ? 71 : 34;
    return 0;
}
int nvmlDeviceGetPowerUsage(void *handle, unsigned int *milliwatts) {
    if (which(handle) == 1) return 3; /* NVML_ERROR_NOT_SUPPORTED */
    *milliwatts = 312500;
    return 0;
}
int nvmlDeviceGetEnforcedPowerLimit(void *handle, unsigned int *milliwatts) {
    if (which(handle) == 1) return 3;
    *milliwatts = 400000;
    return 0;
}
int nvmlDeviceGetComputeRunningProcesses_v3(void *handle, unsigned int *count, nvmlProcessInfo_t *infos) {
    const char *spec = getenv("FAKE_NVML_PROCESSES");
    unsigned int found = 0;
    int device = which(handle);
    while (spec && *spec) {
        int gpu = 0; unsigned int pid = 0; unsigned long long bytes = 0; int used = 0;
        if (sscanf(spec, "%d:%u:%llu%n", &gpu, &pid, &bytes, &used) < 3) break;
        if (gpu == device) {
            if (found >= *count) { *count = found + 1; return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */ }
            infos[found].pid = pid;
            infos[found].usedGpuMemory = bytes;
            infos[found].gpuInstanceId = 0xFFFFFFFFu;
            infos[found].computeInstanceId = 0xFFFFFFFFu;
            found++;
        }
        spec += used;
        if (*spec == ',') spec++;
    }
    *count = found;
    return 0;
}
