// JPEG and PNG decoding to 8-bit RGB, as PIL's Image.open(...).convert("RGB") produces it.
//
// Why C: libjpeg and libpng report errors by longjmp, which must not cross Swift frames; these wrappers keep
// setjmp/longjmp inside C and return an error message instead.
#ifndef FLAVA_CODECS_H
#define FLAVA_CODECS_H
#include <stddef.h>
#include <stdint.h>

/// Result of a decode: `rgb` (width·height·3 bytes, malloc'd; free with flava_free) or `error` set.
typedef struct {
    uint8_t *rgb;
    int width, height;
    char error[200];
} flava_image;

/// Decodes a JPEG (baseline or progressive; gray, RGB/YCbCr, CMYK/YCCK). Refuses images with more than
/// `max_pixels` pixels before allocating them.
flava_image flava_decode_jpeg(const uint8_t *data, size_t size, long max_pixels);
/// Decodes a PNG (1–16-bit, gray, gray+alpha, palette, RGB, RGBA, interlaced).
flava_image flava_decode_png(const uint8_t *data, size_t size, long max_pixels);
/// Reads only the size from a JPEG or PNG header; returns 0 on success.
int flava_image_size(const uint8_t *data, size_t size, int *width, int *height);
/// Encodes 8-bit RGB as PNG; returns a malloc'd buffer (free with flava_free) and its size, or NULL.
uint8_t *flava_encode_png(const uint8_t *rgb, int width, int height, size_t *out_size);
void flava_free(void *p);

#endif
