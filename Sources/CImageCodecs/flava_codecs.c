// See include/flava_codecs.h.
#include "flava_codecs.h"
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

void flava_free(void *p) { free(p); }

static flava_image fail(const char *msg) {
    flava_image r;
    memset(&r, 0, sizeof r);
    snprintf(r.error, sizeof r.error, "%s", msg);
    return r;
}

// ---------------------------------------------------------------- JPEG

struct jerr { struct jpeg_error_mgr pub; jmp_buf jump; char message[JMSG_LENGTH_MAX]; int truncated; };

static void jpeg_fail(j_common_ptr cinfo) {
    struct jerr *e = (struct jerr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->message);
    longjmp(e->jump, 1);
}
// Warnings are ignored except "premature end of data": libjpeg would pad the image with grey, PIL raises
// "image file is truncated", and so do we.
static void jpeg_quiet(j_common_ptr cinfo, int level) {
    struct jerr *e = (struct jerr *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

flava_image flava_decode_jpeg(const uint8_t *data, size_t size, long max_pixels) {
    struct jpeg_decompress_struct cinfo;
    struct jerr jerr;
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile row = NULL;
    flava_image out;
    memset(&out, 0, sizeof out);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_fail;
    jerr.pub.emit_message = jpeg_quiet;
    jerr.truncated = 0;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb); free(row);
        char msg[260];
        snprintf(msg, sizeof msg, "corrupt or truncated JPEG (%s)", jerr.message);
        return fail(msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if ((long)cinfo.image_width * (long)cinfo.image_height > max_pixels) {
        char msg[200];
        snprintf(msg, sizeof msg, "image of %ux%u pixels exceeds the limit of %ld pixels (decompression bomb?)",
                 cinfo.image_width, cinfo.image_height, max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return fail(msg);
    }
    int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    if (cmyk) cinfo.out_color_space = JCS_CMYK;
    else if (cinfo.jpeg_color_space == JCS_GRAYSCALE) cinfo.out_color_space = JCS_GRAYSCALE;
    else cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int w = (int)cinfo.output_width, h = (int)cinfo.output_height, c = cinfo.output_components;
    rgb = malloc((size_t)w * h * 3);
    row = malloc((size_t)w * c);
    if (!rgb || !row) longjmp(jerr.jump, 1);
    int inverted = cmyk && cinfo.saw_Adobe_marker;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = { row };
        int y = (int)cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, rows, 1);
        uint8_t *dst = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            if (c == 1) { dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x]; }
            else if (c == 3) { memcpy(dst + 3 * x, row + 3 * x, 3); }
            else {
                // PIL opens Adobe CMYK as inverted ("CMYK;I"), then CMYK→RGB is (255 − C)(255 − K)/255.
                int k = row[4 * x + 3];
                for (int j = 0; j < 3; j++) {
                    int v = row[4 * x + j];
                    int nc = inverted ? v : 255 - v, nk = inverted ? k : 255 - k;
                    int t = nc * nk + 128;
                    dst[3 * x + j] = (uint8_t)((t + (t >> 8)) >> 8);
                }
            }
        }
    }
    if (jerr.truncated) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb); free(row);
        return fail("truncated JPEG (image data ends early)");
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    free(row);
    out.rgb = rgb; out.width = w; out.height = h;
    return out;
}

// ---------------------------------------------------------------- PNG

struct pngsrc { const uint8_t *data; size_t size, pos; char message[160]; };

static void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
    struct pngsrc *s = (struct pngsrc *)png_get_io_ptr(png);
    if (s->pos + n > s->size) png_error(png, "unexpected end of data");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}
static void png_fail(png_structp png, png_const_charp msg) {
    struct pngsrc *s = (struct pngsrc *)png_get_error_ptr(png);
    snprintf(s->message, sizeof s->message, "%s", msg);
    png_longjmp(png, 1);
}
static void png_quiet(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

flava_image flava_decode_png(const uint8_t *data, size_t size, long max_pixels) {
    struct pngsrc src = { data, size, 0, "" };
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8)) return fail("not a PNG file (bad signature)");
    if (size >= 24) {   // refuse decompression bombs from the IHDR header before libpng reads anything
        long hw = ((long)data[16] << 24) | (data[17] << 16) | (data[18] << 8) | data[19];
        long hh = ((long)data[20] << 24) | (data[21] << 16) | (data[22] << 8) | data[23];
        if (hw * hh > max_pixels) {
            char msg[200];
            snprintf(msg, sizeof msg, "image of %ldx%ld pixels exceeds the limit of %ld pixels (decompression bomb?)", hw, hh, max_pixels);
            return fail(msg);
        }
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) { png_destroy_read_struct(&png, NULL, NULL); return fail("out of memory"); }
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rgb); free(pixels); free(rows);
        char msg[220];
        snprintf(msg, sizeof msg, "corrupt or truncated PNG (%s)", src.message);
        return fail(msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((long)w * (long)h > max_pixels) {
        char msg[200];
        snprintf(msg, sizeof msg, "image of %ux%u pixels exceeds the limit of %ld pixels (decompression bomb?)",
                 (unsigned)w, (unsigned)h, max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return fail(msg);
    }
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    // PIL's convert("RGB"): palette → its colours; alpha dropped (not composited); gray replicated;
    // 16-bit colour takes the high byte; 16-bit gray ("I;16") is clipped to 255, not scaled.
    int gray16 = depth == 16 && (type == PNG_COLOR_TYPE_GRAY || type == PNG_COLOR_TYPE_GRAY_ALPHA);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !gray16) png_set_strip_16(png);
    if (gray16) png_set_swap(png);   // native-endian 16-bit values
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    pixels = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    rgb = malloc((size_t)w * h * 3);
    if (!pixels || !rows || !rgb) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pixels + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    for (png_uint_32 y = 0; y < h; y++) {
        const uint8_t *s = rows[y];
        uint8_t *d = rgb + (size_t)y * w * 3;
        for (png_uint_32 x = 0; x < w; x++) {
            if (gray16) {
                unsigned v = ((const uint16_t *)s)[x * channels];
                uint8_t g = v > 255 ? 255 : (uint8_t)v;
                d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = g;
            } else if (channels <= 2) {
                d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = s[x * channels];
            } else {
                memcpy(d + 3 * x, s + x * channels, 3);
            }
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(pixels); free(rows);
    flava_image out;
    memset(&out, 0, sizeof out);
    out.rgb = rgb; out.width = (int)w; out.height = (int)h;
    return out;
}

int flava_image_size(const uint8_t *data, size_t size, int *width, int *height) {
    if (size >= 24 && !png_sig_cmp((png_const_bytep)data, 0, 8)) {
        *width = (data[16] << 24) | (data[17] << 16) | (data[18] << 8) | data[19];
        *height = (data[20] << 24) | (data[21] << 16) | (data[22] << 8) | data[23];
        return 0;
    }
    struct jpeg_decompress_struct cinfo;
    struct jerr jerr;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jpeg_fail;
    jerr.pub.emit_message = jpeg_quiet;
    jerr.truncated = 0;
    if (setjmp(jerr.jump)) { jpeg_destroy_decompress(&cinfo); return -1; }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    *width = (int)cinfo.image_width; *height = (int)cinfo.image_height;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

// ---------------------------------------------------------------- PNG encoding

struct pngsink { uint8_t *buf; size_t size, cap; int failed; };
static void png_write_mem(png_structp png, png_bytep d, png_size_t n) {
    struct pngsink *s = (struct pngsink *)png_get_io_ptr(png);
    if (s->size + n > s->cap) {
        size_t cap = (s->cap ? s->cap * 2 : 65536);
        while (cap < s->size + n) cap *= 2;
        uint8_t *nb = realloc(s->buf, cap);
        if (!nb) { s->failed = 1; png_error(png, "out of memory"); }
        s->buf = nb; s->cap = cap;
    }
    memcpy(s->buf + s->size, d, n);
    s->size += n;
}
static void png_flush_mem(png_structp png) { (void)png; }

uint8_t *flava_encode_png(const uint8_t *rgb, int width, int height, size_t *out_size) {
    struct pngsink sink = { NULL, 0, 0, 0 };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) { png_destroy_write_struct(&png, NULL); return NULL; }
    if (setjmp(png_jmpbuf(png))) { png_destroy_write_struct(&png, &info); free(sink.buf); return NULL; }
    png_set_write_fn(png, &sink, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * width * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out_size = sink.size;
    return sink.buf;
}
