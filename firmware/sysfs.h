/*
 * sysfs.h - readers for the sensors Linux exposes as files: a DS18B20 on
 * 1-Wire (w1_therm), an IIO temperature channel (an ADC thermistor or an
 * on-board sensor) and a power_supply battery. Each reader takes the path
 * so tests point it at files they write; the parsers are pure.
 */
#ifndef FIREWATCH_SYSFS_H
#define FIREWATCH_SYSFS_H

#include <stddef.h>

/* Parses the text of a w1_therm `w1_slave` file ("... crc=xx YES\n... t=23125").
 * Returns 0 and *c, -EIO when the CRC line does not say YES, -EINVAL when
 * malformed. */
int sysfs_parse_w1_slave(const char *text, double *c);

/* Reads a DS18B20: path is either a `temperature` file (millidegrees, newer
 * kernels) or a `w1_slave` file. Returns 0 or a negative errno. */
int sysfs_read_w1(const char *path, double *c);

/* Finds the first DS18B20 under base (normally /sys/bus/w1/devices): the
 * `temperature` file of a 28-* device if present, else its `w1_slave`.
 * Returns 0 with the path in out, or -ENOENT. */
int sysfs_find_w1(const char *base, char *out, size_t size);

/* Reads an IIO temperature channel from the device directory dir:
 * in_temp_input (millidegrees), or (in_temp_raw + in_temp_offset) *
 * in_temp_scale / 1000 as the IIO ABI defines. Returns 0 or a negative errno. */
int sysfs_read_iio(const char *dir, double *c);

/* Reads `capacity` (percent) of a power_supply directory. Returns 0 and
 * *pct (clamped to 0..100) or a negative errno. */
int sysfs_read_battery(const char *dir, int *pct);

/* Finds the first power_supply under base (normally /sys/class/power_supply)
 * whose `type` is Battery. Returns 0 with the directory in out, or -ENOENT. */
int sysfs_find_battery(const char *base, char *out, size_t size);

#endif
