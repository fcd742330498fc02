import FlavaNN
