export declare const GLIBC_FLOOR: string;
export declare function elfArch(file: string): 'x64' | 'arm64' | undefined;
export declare function objdumpFor(file: string): string;
export declare function objdumpMissing(file: string): string | undefined;
export declare function compareVersions(a: string, b: string): number;
export declare function glibcSymbols(file: string): { version: string; symbols: string[] }[];
export declare function newestGlibc(file: string): { version: string; symbols: string[] };
