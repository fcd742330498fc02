#include <cblas.h>
/* Exported by OpenBLAS but not declared in every cblas.h. */
char *openblas_get_corename(void);
char *openblas_get_config(void);
