/* A stand-in libnvidia-ml.so for tests: the NVML entry points ingot binds, answering
 * with two recorded A100 devices. FAKE_NVML_MODE=fail makes nvmlInit_v2 fail like a
 * driver/library version mismatch; FAKE_NVML_MODE=hang makes it block forever. */
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
