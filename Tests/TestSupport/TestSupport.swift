import FlavaKit
