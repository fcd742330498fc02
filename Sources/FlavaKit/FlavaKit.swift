@_exported import FlavaTensor
@_exported import FlavaAutograd
@_exported import FlavaDistributed
@_exported import FlavaNN
@_exported import FlavaTraining
@_exported import FlavaModel
@_exported import FlavaData
@_exported import FlavaEval
